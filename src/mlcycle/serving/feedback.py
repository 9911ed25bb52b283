"""Labels from production: the observed outcome of a logged prediction, joined by request id.

`POST /feedback` takes `{"request_id": ..., "row": 0, "label": ...}` (or `{"feedback": [...]}`, several at
once) and `mlcycle monitoring feedback --input FILE` a CSV / Parquet file with the columns `request_id`, `label` and
optionally `row`. Every entry is checked before anything is written: the request id must be in
the prediction log (a part on disk, or a request this process answered), `row` within the
request's rows (it may be left out for a one-row request), the label of the served model's type
(its task's `feedback_label` hook: one of its classes for a classifier, a number for a regressor)
and not yet given for that row.
One bad entry refuses the whole call (4xx for the endpoint, an error naming the entry for the
command) and nothing is written.

Labels are stored beside the prediction log in `<log_dir>/_labels/` (a folder pandas and pyarrow
skip when they read the log) as JSON lines, never in the log's parts, which readers may hold:
the endpoint appends to `labels-<pid>.jsonl` of its own process, whole lines written (looping over
short writes; on an error the file is cut back and the call answers 503 with nothing stored) and
synced to disk before it answers, so an answered label survives a SIGTERM, a SIGKILL or a crash;
a torn last line left by a writer killed mid-write is cut before the next append, and every reader
skips a damaged line with a warning naming the file and line (`core/jsonl.py`); the command writes a new file,
`labels-<UTC time>-file.jsonl`, under a temporary name renamed into place. Writers hold an
exclusive lock on `_labels/.lock` while they check for duplicates and write, so two workers never
accept the same row twice. The folder is 0700 and the files 0600: labels are personal data.

A task with its own feedback checks them (its serving module's `checked_feedback` and
`feedback_items`): a recommender's entry is an item of a `/recommend` answer with a rating
(`mlcycle.tasks.recommender.serve`).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import math
import os
import threading
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from mlcycle.core import jsonl, private, tasks
from mlcycle.core.errors import ClientError

LABELS = "_labels"
MAX_ENTRIES = 10_000  # entries per POST /feedback


def labels_dir(log_dir: Path) -> Path:
    return Path(log_dir) / LABELS


def label_check(task: tasks.Task):
    """The check of a label fed back for a model of `task`: its `feedback_label` hook, function(value,
    meta, where) -> the label as stored or a ClientError(422) naming `where` (the tabular task's: one
    of a classifier's classes, a number for a regressor); a task without the hook stores it as sent."""
    return task.hook("feedback_label") or (lambda value, meta, where: value)


def check_label(value, meta: dict, where: str = "label"):
    """The label as stored for the served model (`label_check` of its task)."""
    return label_check(tasks.for_objective(meta.get("task")))(value, meta, where)


REC_FIELDS = ("user", "k", "exclude", "prediction", "source")  # the columns of a /recommend answer's log row


class KnownRequests:
    """Request id -> rows in its request, from the prediction log's parts (read once each: parts
    are never rewritten) and the requests this process answered (not on disk yet); for a
    `/recommend` answer also its items, best first."""

    def __init__(self, log_dir: Path):
        self.log_dir = Path(log_dir)
        self.rows: dict[str, int] = {}
        self.items: dict[str, list[str]] = {}
        self.read_parts: set[str] = set()
        self._lock = threading.Lock()

    def add(self, request_id: str, n: int, items: list[str] | None = None) -> None:
        with self._lock:
            self.rows[request_id] = max(self.rows.get(request_id, 0), n)
            if items is not None:
                self.items[request_id] = list(items)

    def refresh(self) -> None:
        import pyarrow.parquet as pq

        for p in sorted(self.log_dir.glob("part-*.parquet")):
            if p.name in self.read_parts:
                continue
            try:
                names = set(pq.read_schema(p).names)
                recs = all(c in names for c in REC_FIELDS)
                t = pq.read_table(p, columns=["request_id", "row", *(["prediction"] if recs else [])]).to_pandas()
            except Exception:  # being replaced, or not a log part: tried again next time
                continue
            counts = t.groupby("request_id")["row"].max() + 1
            lists = {}
            if recs:
                for rid, pred in zip(t["request_id"], t["prediction"], strict=True):
                    try:
                        lists[str(rid)] = [str(i) for i in json.loads(pred)]
                    except (TypeError, ValueError):
                        pass
            with self._lock:
                for rid, n in counts.items():
                    self.rows[str(rid)] = max(self.rows.get(str(rid), 0), int(n))
                for rid, items in lists.items():
                    self.items.setdefault(rid, items)
                self.read_parts.add(p.name)

    def get(self, request_id: str) -> int | None:
        n = self.rows.get(request_id)
        if n is None:
            self.refresh()
            n = self.rows.get(request_id)
        return n


@contextmanager
def locked(folder: Path):
    """Hold the label folder's exclusive lock (the folder created 0700: labels are personal data)."""
    private.mkdir(folder)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


class LabelFiles:
    """The (request id, row) pairs already labelled, read incrementally from the label files."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.offsets: dict[str, int] = {}
        self.seen: set[tuple[str, int]] = set()

    def refresh(self) -> None:
        for p in sorted(self.folder.glob("labels-*.jsonl")):
            start = self.offsets.get(p.name, 0)
            with p.open("rb") as f:
                f.seek(start)
                data = f.read()
            end = data.rfind(b"\n") + 1  # a line still being written is read next time
            for e in jsonl.parse(data[:end], p):  # a damaged line is skipped with a warning
                try:
                    self.seen.add((str(e["request_id"]), int(e["row"])))
                except (KeyError, TypeError, ValueError):
                    continue
            self.offsets[p.name] = start + end


def entries_of(body) -> list[dict]:
    """The feedback entries of a POST body: one object, or {"feedback": [objects]}."""
    if isinstance(body, dict) and "feedback" in body:
        items = body["feedback"]
        if not isinstance(items, list) or not items:
            raise ClientError(422, "wrong type", "feedback", "send a non-empty list of {request_id, row, label}")
        if len(items) > MAX_ENTRIES:
            raise ClientError(413, "too many entries", "feedback", f"at most {MAX_ENTRIES} entries per request")
        return items
    if isinstance(body, dict):
        return [body]
    raise ClientError(422, "wrong type", "body", "send {\"request_id\": ..., \"row\": 0, \"label\": ...}")


def entry_request_id(e, at: str, fields: tuple[str, ...], fields_hint: str, id_hint: str) -> str:
    """The request id of one feedback entry, after checking that the entry is an object with only
    `fields`; a ClientError naming the entry, the unknown field or request_id otherwise."""
    if not isinstance(e, dict):
        raise ClientError(422, "wrong type", f"{at}entry", "each entry is an object {" + ", ".join(fields) + "}")
    unknown = sorted(set(e) - set(fields))
    if unknown:
        raise ClientError(422, "unknown field", f"{at}{unknown[0]}", fields_hint)
    rid = e.get("request_id")
    if not isinstance(rid, str) or not rid:
        raise ClientError(422, "missing field" if rid is None else "wrong type", f"{at}request_id", id_hint)
    return rid


def logged_rows(known: KnownRequests, rid: str, at: str, noun: str) -> int:
    """The rows of request `rid` in the prediction log; a 404 naming it (a `noun`: prediction,
    recommendation, forecast) when the log does not hold it."""
    n = known.get(rid)
    if n is None:
        raise ClientError(404, "unknown request id", f"{at}request_id",
                          f"no {noun} with request id {rid!r} in the prediction log (a request answered "
                          "by another worker is known once its part is written: retry after serve.log_roll_seconds)")
    return n


def answer_of(known: KnownRequests, rid: str, at: str, noun: str, route: str) -> list[str]:
    """What the answer of a task's own route (`route`, e.g. /recommend) listed for request `rid` (its
    items, its forecast times), one per logged row; a ClientError when the request is unknown or was
    answered by another route."""
    logged_rows(known, rid, at, noun)
    listed = known.items.get(rid)
    if listed is None:
        raise ClientError(422, f"not a {noun}", f"{at}request_id",
                          f"request {rid} was not answered by {route}; send its labels as {{request_id, row, label}}")
    return listed


def claim(labelled: set, seen: set, rid: str, row: int, where: str, message: str) -> None:
    """Count row `row` of request `rid` as labelled by this call; a 409 naming `where` with `message`
    when it already has a label (stored, or earlier in the same call): feedback is never replaced."""
    if (rid, row) in labelled or (rid, row) in seen:
        raise ClientError(409, "duplicate", where, message)
    seen.add((rid, row))


def checked(items: list, meta: dict, known: KnownRequests, labelled: set, prefix: str = "") -> list[dict]:
    """The entries as stored ({request_id, row, label}); a ClientError naming the first bad one."""
    task = tasks.for_objective(meta.get("task"))
    own = task.serving()
    if own is not None:  # a task with its own feedback (e.g. a recommender's: an item of the answer)
        return own.checked_feedback(items, meta, known, labelled, prefix)
    check = label_check(task)
    out, seen = [], set()
    for i, e in enumerate(items):
        at = f"{prefix}[{i}]." if len(items) > 1 or prefix else ""
        rid = entry_request_id(e, at, ("request_id", "row", "label"), "an entry has request_id, row and label",
                               "the request id a /predict answer gave (its request_id or X-Request-ID)")
        if "label" not in e or e["label"] is None:
            raise ClientError(422, "missing field", f"{at}label", "the observed outcome")
        n = logged_rows(known, rid, at, "prediction")
        row = e.get("row")
        if row is None:
            if n != 1:
                raise ClientError(422, "missing field", f"{at}row", f"request {rid} has {n} rows: say which (0..{n - 1})")
            row = 0
        if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < n:
            raise ClientError(422, "out of range", f"{at}row", f"request {rid} has rows 0..{n - 1}, got {row!r}")
        label = check(e["label"], meta, f"{at}label")
        claim(labelled, seen, rid, row, f"{at}request_id", f"request {rid} row {row} already has a label; labels are never replaced")
        out.append({"request_id": rid, "row": row, "label": label})
    return out


class FeedbackStore:
    """Checks and stores labels beside one prediction log (see the module docstring)."""

    def __init__(self, log_dir: Path, known: KnownRequests | None = None):
        self.log_dir = Path(log_dir)
        self.folder = labels_dir(log_dir)
        self.known = known or KnownRequests(log_dir)
        self.files = LabelFiles(self.folder)
        self._lock = threading.Lock()
        self.rows_written = 0

    def add(self, items: list, meta: dict, source: str = "api") -> int:
        """Check every entry, then append them (synced) to this process's label file; the count."""
        with self._lock, locked(self.folder):
            self.files.refresh()
            entries = checked(items, meta, self.known, self.files.seen)
            ts = dt.datetime.now(dt.UTC).isoformat()
            path = self.folder / f"labels-{os.getpid()}.jsonl"
            try:  # whole lines or none (a torn last line left by a killed writer is cut first), synced
                jsonl.append(path, [{**e, "ts": ts, "source": source} for e in entries])
            except OSError as exc:
                raise ClientError(503, "labels not stored", None,
                                  f"the labels could not be written to {self.folder} ({type(exc).__name__}: "
                                  f"{exc.strerror or exc}); none was stored, retry later") from None
            self.files.refresh()
            self.rows_written += len(entries)
            return len(entries)

    def add_file(self, frame: pd.DataFrame, meta: dict, source: str) -> int:
        """A file of outcomes (`mlcycle monitoring feedback`): all checked, then written as one new label file."""
        own = tasks.for_objective(meta.get("task")).serving()
        items = own.feedback_items(frame) if own is not None else table_items(frame)
        with locked(self.folder):
            self.files.refresh()
            entries = checked(items, meta, self.known, self.files.seen, prefix="rows")
            ts = dt.datetime.now(dt.UTC)
            name = f"labels-{ts.strftime('%Y%m%dT%H%M%S%fZ')}-file.jsonl"
            tmp = self.folder / f".{name}.tmp"
            try:
                with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                    for e in entries:
                        f.write(json.dumps({**e, "ts": ts.isoformat(), "source": source}) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.folder / name)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        return len(entries)


def cell_value(value):
    """A cell as a JSON value: None for a missing one, numpy scalars as Python ones."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
        return None
    return value.item() if hasattr(value, "item") else value


def file_columns(frame: pd.DataFrame, required: tuple[str, ...], optional: tuple[str, ...], hint: str) -> None:
    """A feedback file has every `required` column and nothing beyond `optional` ones: else a
    ClientError naming the first column wrong."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ClientError(422, "missing column", missing[0], f"the file needs the columns {' and '.join(required)} {hint}")
    extra = [c for c in frame.columns if c not in (*required, *optional)]
    if extra:
        raise ClientError(422, "unknown column", extra[0], f"the file has the columns {', '.join((*required, *optional))}")


def table_items(frame: pd.DataFrame) -> list[dict]:
    """The entries of a feedback file of a table model (columns request_id, label, optional row)."""
    file_columns(frame, ("request_id", "label"), ("row",), "(and row for requests of several rows)")
    items = []
    for rec in frame.to_dict("records"):
        e = {"request_id": None if pd.isna(rec["request_id"]) else str(rec["request_id"]), "label": rec["label"]}
        if "row" in rec and not pd.isna(rec["row"]):
            e["row"] = int(rec["row"]) if float(rec["row"]).is_integer() else rec["row"]
        if isinstance(e["label"], float) and math.isnan(e["label"]):
            e["label"] = None
        elif hasattr(e["label"], "item"):
            e["label"] = e["label"].item()
        items.append(e)
    return items


def read(log_dir: Path) -> pd.DataFrame:
    """Every stored label: request_id, row, label, ts, source, and item for a recommender's feedback
    (empty frame without labels). A torn or damaged line (a write cut short) is skipped with a
    `TornLine` warning naming the file and line; `mlcycle release status` and monitoring read here."""
    rows = []
    for p in sorted(labels_dir(log_dir).glob("labels-*.jsonl")):
        rows += [r for r in jsonl.read(p) if isinstance(r, dict) and "request_id" in r and "row" in r]
    if not rows:
        return pd.DataFrame(columns=["request_id", "row", "label", "ts", "source"])
    df = pd.DataFrame(rows)
    df["row"] = df["row"].astype("int64")
    return df.drop_duplicates(["request_id", "row"], keep="first").reset_index(drop=True)
