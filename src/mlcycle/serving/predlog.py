"""The prediction log: every scored row, written off the request path as Parquet parts.

A request appends its rows to the part being filled (columns as lists, not one DataFrame per
request); a part is rolled when it holds `max_rows` rows, `max_queue_bytes` bytes (as journal
records) or its first row is `roll_seconds` old, and one writer thread writes it. Parts are written
under a temporary name and renamed, so a reader never sees half a file:

    <log_dir>/part-<UTC start>-<pid>-<seq>.parquet

Each row holds the model's input columns, `prediction`, `score` (positive-class probability,
regression value or top-class probability), `proba_<class>` for multiclass models,
`model_version` (the version that scored the row), `route` (`champion`, `canary` or `shadow`: see
`serving/release.py`), `request_id`, `row` (position in its request) and `ts` (UTC time of scoring).
A shadow row has the same request id and position as the champion's row it shadows.
`pandas.read_parquet(log_dir)` reads them all. The folder is 0700 (an existing one is made 0700) and
parts and journals 0600: they hold request inputs.

A hard kill loses nothing answered: before `submit` returns, the request's own thread has appended
its rows to the write-ahead journal of the part they join, `<log_dir>/_journal/<part name>.journal`
(one line per request: CRC-32, space, JSON), with one `os.write`; from then on a SIGKILL (the OOM
killer) loses none of them: they are in the kernel's page cache. The request does not wait for the
writer thread. One lock orders a request's journal append with its rows joining the part, and a
part is rolled under it, so a part holds exactly the rows of its journal. A thread fsyncs every
journal written to `SYNC_SECONDS` (50 ms) after a write, so a machine crash (power, kernel) loses
at most the rows answered in the last 50 ms plus the time of one fsync.
A part written, its journal is removed. `start` first writes the journals of processes that died
(their `flock`, held for the process's life, is free) as the parts they were to become
(`recover`): a journal whose part exists is only removed, so no row is written twice; a torn
record is skipped with a warning.

Nothing answered is dropped:
- a part that cannot be written stays in memory (with its journal) and is retried with backoff
  (0.5 s doubling up to 30 s), oldest first with the parts rolled meanwhile, each its own file;
  meanwhile `healthy` is False (the server answers /ready and /predict with 503);
- parts held beyond `max_queue_rows` rows or `max_queue_bytes` bytes while failing, and rows still
  unwritten at `close()`, are spilled to `fallback_dir` (parts of the same shape); the next
  successful write moves spilled parts back into the log folder;
- rows that could be written nowhere stay in the journal for the next start; only those the journal
  could not take either are counted in `rows_lost` and logged as an error.

Memory is bounded: at most `max_queue_rows` rows of rolled parts wait for the writer (while it
writes another part); beyond that `submit` waits (the request slows down rather than a row being
lost); at most `max_queue_bytes` bytes wait, beyond which `submit` raises LogFull at once (503
`busy`). `close()` writes everything still held.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mlcycle.core import private
from mlcycle.core.errors import LogFull, MonitorError
from mlcycle.core.jsonl import skipped, write_whole

log = logging.getLogger("mlcycle.serve")
BACKOFF = (0.5, 30.0)  # first retry delay and the largest, seconds
JOURNAL = "_journal"  # the journals' folder in the log folder (a leading _: pandas and pyarrow skip it)
SYNC_SECONDS = 0.05  # the journal is fsynced at most this long after a write (against a machine crash)
SETTLE_BATCHES = 64  # the writer turns the requests' rows into columns once this many wait


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
        cols = self._columns(copy=True)
        cols["ts"] = [self.ts] * len(self)
        return cols

    def record(self) -> bytes:
        """These rows as one journal record (`journal_record`), the columns not copied."""
        return journal_record(self._columns(copy=False), len(self), self.ts)

    def _columns(self, copy: bool) -> dict[str, list]:
        """The log columns but `ts`: the inputs' and outputs' (as new lists when `copy`), then the
        request's own."""
        n = len(self)
        if isinstance(self.inputs, pd.DataFrame):
            cols = {str(c): self.inputs[c].tolist() for c in self.inputs.columns}
        else:
            cols = {k: list(v) for k, v in self.inputs.items()} if copy else dict(self.inputs)
        cols.update({k: list(v) for k, v in self.outputs.items()} if copy else self.outputs)
        cols["route"] = [self.route] * n
        cols["model_version"] = [self.model_version] * n
        cols["request_id"] = [self.request_id] * n
        cols["row"] = list(self.positions) if self.positions is not None else list(range(n))
        return cols

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.columns())


class Held:
    """Rows accumulated as columns: a list per column, padded with None where a batch lacks one.
    A request only appends its batch (`append`); the writer thread turns batches into columns
    (`settle`), off the request path. `name` is the part they become and the name of their journal
    (fixed by the first row, so a retry, a spill and the recovery of their journal all write the
    same file); `nbytes` is their size as journal records; `fd` their journal, open and locked until
    the part is written; `unjournaled` the rows the journal could not take."""

    def __init__(self, name: str = ""):
        self.cols: dict[str, list] = {}
        self.batches: list[Batch] = []  # appended, not yet in `cols`
        self.n = 0
        self.ncols = 0  # rows in `cols`
        self.nbytes = 0
        self.name = name
        self.first_ts: dt.datetime | None = None
        self.since = 0.0  # monotonic time of the first row
        self.fd: int | None = None
        self.dirty = False  # the journal was written since its last fsync
        self.unjournaled = 0

    def _count(self, n: int, ts: dt.datetime) -> None:
        if not self.n:
            self.first_ts, self.since = ts, time.monotonic()
        self.n += n

    def append(self, batch: Batch, n: int, nbytes: int) -> None:
        """A request's `n` rows (`nbytes` as a journal record), to be turned into columns by `settle`."""
        self._count(n, batch.ts)
        self.nbytes += nbytes
        self.batches.append(batch)

    def settle(self, batches: list[Batch]) -> None:
        """Turn appended batches (taken from `batches`, in order) into columns."""
        for batch in batches:
            self._extend(batch.columns(), len(batch))

    def add(self, batch: Batch) -> None:
        self.add_columns(batch.columns(), len(batch), batch.ts)

    def add_columns(self, cols: dict[str, list], n: int, ts: dt.datetime) -> None:
        """Append `n` rows given as columns (`ts` among them)."""
        self._count(n, ts)
        self._extend(cols, n)

    def _extend(self, cols: dict[str, list], n: int) -> None:
        if cols.keys() != self.cols.keys():
            for k in cols:
                if k not in self.cols:
                    self.cols[k] = [None] * self.ncols
            for k in self.cols:
                if k not in cols:
                    cols[k] = [None] * n
        for k, v in cols.items():
            self.cols[k].extend(v)
        self.ncols += n

    def __len__(self) -> int:
        return self.n


class PredictionLog:
    """A background writer of Parquet parts, with a write-ahead journal (see the module docstring)."""

    def __init__(self, log_dir: Path, max_rows: int = 100_000, roll_seconds: float = 60.0,
                 max_queue_rows: int = 200_000, schema=None, fallback_dir: Path | None = None,
                 max_queue_bytes: int = 64_000_000):
        self.dir = Path(log_dir)
        self.journal_dir = self.dir / JOURNAL
        self.fallback_dir = Path(fallback_dir) if fallback_dir else None
        self.max_rows = max_rows
        self.roll_seconds = roll_seconds
        self.max_queue_rows = max_queue_rows
        self.max_queue_bytes = max_queue_bytes
        self.schema = schema  # optional pyarrow schema of the input columns, so parts agree
        # One lock orders a request's journal append with its rows joining the part being filled, so
        # a part holds exactly the rows of its journal; the writer rolls a part under it.
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # the writer waits on it
        self._room = threading.Condition(self._lock)  # requests wait on it while max_queue_rows rows wait
        self._cur = Held()  # the part being filled: requests append to it and to its journal
        self._ready: list[Held] = []  # parts rolled and not yet taken by the writer
        self._ready_rows = 0
        self._ready_bytes = 0
        self._held_rows = 0  # rows of rolled parts not yet written, spilled or given up
        self._busy = True  # the writer is not waiting for work (rolled parts wait for it meanwhile)
        self._open: list[Held] = []  # the parts whose journal is open (the syncer fsyncs them)
        self._stopping = False
        self._seq = 0
        self._thread: threading.Thread | None = None
        self._syncer: threading.Thread | None = None
        self._stop_sync = threading.Event()
        self.rows_written = 0
        self.parts_written = 0
        self.rows_spilled = 0  # written to fallback_dir
        self.rows_lost = 0  # written nowhere (counted and logged)
        self.rows_recovered = 0  # written at start from journals of processes that ended without writing them
        self.failures = 0  # consecutive failed writes
        self.error: BaseException | None = None  # the last write error, None once a write succeeds
        self.journal_error: BaseException | None = None  # the last journal write error, None once one succeeds

    def start(self) -> PredictionLog:
        private.mkdir(self.dir)
        self.recover()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()
        self._stop_sync.clear()
        self._syncer = threading.Thread(target=self._sync_loop, name="prediction-log-sync", daemon=True)
        self._syncer.start()
        return self

    def submit(self, batch: Batch, timeout: float = 30.0) -> None:
        """Append one request's rows to the journal (one write) and to the part being filled, then
        return: a process kill from then on loses none of them. The writer thread is not waited
        for. Waits while `max_queue_rows` rows of rolled parts wait for the writer (busy with
        another); LogFull after `timeout` s, or at once when they hold `max_queue_bytes` bytes (as
        journal records)."""
        if self._thread is None or not self._thread.is_alive():
            raise LogFull(f"the prediction log writer is not running ({self.error!r})")
        n = len(batch)
        record = batch.record()  # serialised before the lock: other requests append meanwhile
        with self._lock:
            if self._busy and self._ready_rows and self._ready_bytes + len(record) > self.max_queue_bytes:
                raise LogFull(f"{self._ready_bytes / 1e6:.1f} MB of rows wait for the prediction log writer "
                              f"(serve.log_queue_mb: {self.max_queue_bytes / 1e6:g})")
            deadline = None
            while self._busy and self._ready_rows and self._ready_rows + n > self.max_queue_rows:
                deadline = deadline or time.monotonic() + timeout
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LogFull(f"{self._ready_rows} rows wait for the prediction log writer")
                self._room.wait(left)
            if self._stopping:
                raise LogFull("the prediction log is closing")
            cur = self._cur
            if not cur.n:
                cur.name = self._next_name(batch.ts)
                self._wake.notify()  # the writer times the roll from the first row
            self._journal_append(cur, record, n)
            cur.append(batch, n, len(record))
            if cur.n >= self.max_rows or cur.nbytes >= self.max_queue_bytes:
                self._roll()
            elif len(cur.batches) == SETTLE_BATCHES:
                self._wake.notify()  # the writer turns them into columns

    @property
    def pending(self) -> int:
        """Rows not yet in a part: in the part being filled or in rolled parts not yet written."""
        return self._cur.n + self._held_rows

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def healthy(self) -> bool:
        """The writer runs and its last write succeeded."""
        return self.running and self.error is None

    def close(self, timeout: float = 120.0) -> None:
        """Write every row still held (spilling what cannot be written), then stop the writer.
        Rows still unwritten after `timeout` seconds are counted in `rows_lost` and logged (their
        journal stays for the next start)."""
        if self._thread is None:
            return
        with self._lock:
            self._stopping = True
            self._wake.notify()
            self._room.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.rows_lost += self.pending
            log.error("prediction log: %d rows were not written within %.0f s of shutdown", self.pending, timeout)
        self._thread = None
        self._stop_sync.set()
        if self._syncer is not None:
            self._syncer.join(10)
            self._syncer = None
        self._sync()

    # ------------------------------------------------------------ the journal

    def journal_path(self, name: str) -> Path:
        """The journal of the rows that become part `name`."""
        return self.journal_dir / (name.removesuffix(".parquet") + ".journal")

    def _journal_open(self, held: Held) -> int:
        """Create and lock the journal of `held` (held for the process's life: the recovery skips it).
        Another worker's recovery may have taken the new file between its creation and our lock
        (and removed it, as a journal of no rows): then it is created again."""
        private.mkdir(self.journal_dir)
        path = self.journal_path(held.name)
        for _ in range(3):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if os.fstat(fd).st_nlink:
                    return fd
            except OSError:
                os.close(fd)
                raise
            os.close(fd)
        raise OSError(f"the journal {path} was removed as soon as it was created, three times")

    def _journal_append(self, held: Held, data: bytes, n: int) -> None:
        """Append the records of `n` rows to the journal of `held` (opened on its first rows). The
        caller holds the lock."""
        try:
            if held.fd is None:
                held.fd = self._journal_open(held)
                self._open.append(held)
            write_whole(held.fd, data)
            held.dirty = True
        except OSError as exc:
            held.unjournaled += n
            if self.journal_error is None:
                log.error("prediction log: rows could not be appended to the journal in %s (they are held in memory "
                          "until their part is written): %s: %s", self.journal_dir, type(exc).__name__, exc)
            self.journal_error = exc
            return
        if self.journal_error is not None:
            log.info("prediction log: the journal in %s can be written again", self.journal_dir)
            self.journal_error = None

    def _finish(self, held: Held, remove: bool) -> None:
        """The rows of `held` are written (or given up): close its journal; `remove` it once they are
        in a part. Removed before it is closed: while it is locked no recovery takes it."""
        with self._lock:
            if held in self._open:
                self._open.remove(held)
            fd, held.fd = held.fd, None
            self._held_rows -= held.n
        if remove and held.name:
            try:
                self.journal_path(held.name).unlink(missing_ok=True)
            except OSError as exc:  # the part exists: the next start removes the journal
                log.warning("prediction log: the journal %s could not be removed: %s",
                            self.journal_path(held.name), exc)
        if fd is not None:
            os.close(fd)

    def _sync_loop(self) -> None:
        while not self._stop_sync.wait(SYNC_SECONDS):
            self._sync()

    def _sync(self) -> None:
        """fsync the journals written since the last time (against a machine crash)."""
        with self._lock:
            fds = []
            for held in self._open:
                if held.dirty and held.fd is not None:
                    fds.append(os.dup(held.fd))  # the writer may close its descriptor meanwhile
                    held.dirty = False
        for fd in fds:
            try:
                os.fsync(fd)
            except OSError:
                pass
            finally:
                os.close(fd)

    def recover(self) -> int:
        """Write the rows of journals left by processes that ended without writing their part (a
        kill, a crash) as those parts, then remove the journals; the rows recovered. Idempotent: a
        journal whose part exists (in the log or the fallback folder) is only removed; a journal
        still locked by its living process is left alone."""
        total = 0
        for path in sorted(self.journal_dir.glob("part-*.journal")):
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:  # removed meanwhile by another worker's recovery
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # its process is alive
                    continue
                if not path.exists():
                    continue
                name = path.name.removesuffix(".journal") + ".parquet"
                if not ((self.dir / name).exists() or (self.fallback_dir and (self.fallback_dir / name).exists())):
                    held = Held(name)
                    for n, ts, cols in read_journal(path):
                        cols["ts"] = [ts] * n
                        held.add_columns(cols, n, ts)
                    if held.n and not self._write(held, self.dir, spill=True):
                        log.error("prediction log: the journal %s could not be written as a part; it is kept for "
                                  "the next start", path)
                        continue
                    if held.n:
                        total += held.n
                        log.warning("prediction log: %d rows of a process that ended before writing them recovered "
                                    "from %s into %s", held.n, path, self.dir / name)
                path.unlink(missing_ok=True)
            finally:
                os.close(fd)
        self.rows_recovered += total
        return total

    # ------------------------------------------------------------ the writer thread

    def _next_name(self, ts: dt.datetime) -> str:
        self._seq += 1
        return f"part-{ts.strftime('%Y%m%dT%H%M%S%fZ')}-{os.getpid()}-{self._seq:06d}.parquet"

    def _roll(self) -> None:
        """Close the part being filled: its rows and journal go to the writer, the next request
        starts a part (and a journal) of its own. The caller holds the lock."""
        cur = self._cur
        if not cur.n:
            return
        self._cur = Held()
        self._ready.append(cur)
        self._ready_rows += cur.n
        self._ready_bytes += cur.nbytes
        self._held_rows += cur.n
        self._wake.notify()

    def _backoff(self) -> float:
        return min(BACKOFF[1], BACKOFF[0] * 2 ** (self.failures - 1))

    def _run(self) -> None:
        parked: list[Held] = []  # rolled parts taken from the requests, not yet written (oldest first)
        retry_at = 0.0
        while True:
            with self._lock:
                while True:
                    now = time.monotonic()
                    if self._cur.n and now - self._cur.since >= self.roll_seconds:
                        self._roll()
                    if self._ready or self._stopping or (self.error is not None and now >= retry_at):
                        break
                    if len(self._cur.batches) >= SETTLE_BATCHES:
                        break
                    waits = [self._cur.since + self.roll_seconds - now] if self._cur.n else []
                    if self.error is not None:
                        waits.append(retry_at - now)
                    self._busy = False  # a part rolled meanwhile is taken at once: it does not count as waiting
                    self._wake.wait(min(waits) if waits else None)
                    self._busy = True
                stopping = self._stopping
                if stopping:
                    self._roll()
                ready = self._ready
                self._ready, self._ready_rows, self._ready_bytes = [], 0, 0
                self._room.notify_all()
                cur, batches = self._cur, self._cur.batches
                cur.batches = []
            cur.settle(batches)  # the columns of the part being filled, built here rather than on requests
            for held in ready:
                held.settle(held.batches)
                held.batches = []
            parked += ready
            if stopping:
                self._drain(parked)
                return
            if self.error is not None and time.monotonic() < retry_at:
                pass  # failing: new parts wait with the others for the retry
            elif parked:
                while parked and self._write(parked[0], self.dir):
                    self._finish(parked.pop(0), remove=True)
                    self._reclaim()
                if parked:
                    retry_at = time.monotonic() + self._backoff()
            elif self.error is not None:  # everything held was spilled: probe the folder
                if self._probe():
                    self._reclaim()
                else:
                    retry_at = time.monotonic() + self._backoff()
            if self.error is not None and parked and (sum(p.n for p in parked) >= self.max_queue_rows
                                                      or sum(p.nbytes for p in parked) >= self.max_queue_bytes):
                kept = []
                for p in parked:  # memory stays bounded
                    if self._spill(p):
                        self._finish(p, remove=True)
                    else:
                        kept.append(p)
                parked = kept

    def _drain(self, parked: list[Held]) -> None:
        """At close: every part held written, else spilled, else left in its journal for the next
        start (counted as lost when the journal could not take its rows either)."""
        for held in parked:
            if self._write(held, self.dir) or self._spill(held):
                self._finish(held, remove=True)
                continue
            if held.n > held.unjournaled:
                log.error("prediction log: %d answered rows could not be written to %s nor to %s; they stay in the "
                          "journal %s and the next start writes them", held.n - held.unjournaled, self.dir,
                          self.fallback_dir, self.journal_path(held.name))
            if held.unjournaled:
                self.rows_lost += held.unjournaled
                log.error("prediction log: %d answered rows could not be written to %s nor to %s nor to the "
                          "journal; they are lost", held.unjournaled, self.dir, self.fallback_dir)
            self._finish(held, remove=False)

    def _spill(self, held: Held) -> bool:
        if self.fallback_dir is None:
            return False
        try:
            private.mkdir(self.fallback_dir)
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
        log.info("prediction log: %s can be written again after %d failed attempts", self.dir, self.failures)
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
            name = held.name = held.name or self._next_name(held.first_ts)
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
                log.info("prediction log: writing again after %d failed attempts", self.failures)
            self.error, self.failures = None, 0
            self.rows_written += held.n
            self.parts_written += 1
        return True


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


def answers_to_monitor(root: Path, log_dir: str | Path, send: str, rows_of, days: float,
                       now: dt.datetime | None, what: str) -> tuple[Path, pd.DataFrame]:
    """The log folder (`parts_to_monitor`) and a task's answers of the last `days` in it: `rows_of`
    turns the log's rows into the task's (with a UTC `ts`); a MonitorError naming `what` (e.g.
    "/forecast answers") when there are none in the window."""
    folder, files = parts_to_monitor(root, log_dir, send)
    rows = rows_of(pd.concat([pd.read_parquet(f) for f in files], ignore_index=True))
    since = pd.Timestamp(now or dt.datetime.now(dt.UTC)) - pd.Timedelta(days=days)
    rows = rows[rows["ts"] >= since].reset_index(drop=True)
    if rows.empty:
        raise MonitorError(f"no {what} in the last {days:g} days of {log_dir}; widen --days or monitor.log_window_days")
    return folder, rows


def read(log_dir: Path) -> pd.DataFrame:
    """Every row of the prediction log (all parts), oldest part first."""
    files = parts(log_dir)
    if not files:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)


# ---------------------------------------------------------------- journal records

def json_value(value):
    """A value JSON cannot encode as itself: times as ISO text, numpy values as Python ones, else text."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def journal_record(cols: dict[str, list], n: int, ts: dt.datetime) -> bytes:
    """One journal line: the CRC-32 of the JSON record in 8 hex digits, a space, the record
    `{"n": rows, "ts": ISO time, "cols": {column: values}}` and a newline."""
    if "ts" in cols:
        cols = {k: v for k, v in cols.items() if k != "ts"}
    body = json.dumps({"n": n, "ts": ts.isoformat(), "cols": cols}, default=json_value, separators=(",", ":")).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


def read_journal(path: Path) -> list[tuple[int, dt.datetime, dict[str, list]]]:
    """The records of a journal as (rows, time, columns); a torn or damaged line (a crash in the
    middle of a write) is skipped with a warning naming the file and line."""
    out = []
    data = Path(path).read_bytes()
    lines = data.split(b"\n")
    for i, line in enumerate(lines, 1):
        if not line:
            continue
        try:
            crc, body = line.split(b" ", 1)
            if int(crc, 16) != zlib.crc32(body):
                raise ValueError("checksum mismatch")
            rec = json.loads(body)
            out.append((int(rec["n"]), dt.datetime.fromisoformat(rec["ts"]), rec["cols"]))
        except (ValueError, KeyError, TypeError) as exc:
            skipped(path, i, i == len(lines), exc)
    return out
