"""What a hard kill, a full disk or a crash can leave, and what the next reader and writer make of it:
the prediction log's journal written as a part on the next start (once, however often recovery
runs), labels and audit entries whole or not at all, a torn line skipped with a warning, the log
queue bounded in bytes, and private modes on everything that holds request rows or labels."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

import mlcycle
from mlcycle.core.errors import ClientError, LogFull, TornLine
from mlcycle.lifecycle import audit
from mlcycle.serving import feedback
from mlcycle.serving.predlog import Batch, PredictionLog, read

META = {"task": "classification", "classes": [0, 1], "positive_class": 1}
SRC = str(Path(mlcycle.__file__).resolve().parents[1])  # the package this process imports


def child(code: str, *args: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh Python process (the package as this one imports it)."""
    e = dict(os.environ, PYTHONPATH=os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=e, capture_output=True,
                          text=True, timeout=120)


KILLED_WRITER = """
    import datetime as dt, os, signal, sys
    from mlcycle.serving.predlog import Batch, PredictionLog
    log = PredictionLog(sys.argv[1], roll_seconds=3600).start()
    for i in range(50):
        log.submit(Batch({"distance": [float(i)], "carrier": ["UA"]}, {"prediction": [1], "score": [0.25]},
                         "3", f"r{i}", dt.datetime.now(dt.UTC)))  # answered: submit returned
    print("answered", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_rows_answered_before_a_sigkill_are_written_by_the_next_start(tmp_path):
    folder = tmp_path / "log"
    proc = child(KILLED_WRITER, str(folder))
    assert proc.returncode == -signal.SIGKILL and "answered" in proc.stdout, proc.stderr
    assert not list(folder.glob("part-*.parquet"))  # the killed process wrote no part
    log = PredictionLog(folder).start()  # the next start
    log.close()
    df = read(folder)
    assert sorted(df["request_id"]) == sorted(f"r{i}" for i in range(50))
    assert log.rows_recovered == 50 and df["score"].eq(0.25).all() and str(df["ts"].dtype) == "datetime64[us, UTC]"
    assert not list((folder / "_journal").glob("*.journal"))


def test_recovery_writes_each_journal_once(tmp_path):
    folder = tmp_path / "log"
    assert child(KILLED_WRITER, str(folder)).returncode == -signal.SIGKILL
    journal = next((folder / "_journal").glob("*.journal"))
    kept = journal.read_bytes()
    assert PredictionLog(folder).recover() == 50
    journal.write_bytes(kept)  # killed after its part was written, before the journal was removed
    assert PredictionLog(folder).recover() == 0 and not journal.exists()
    assert len(read(folder)) == 50  # no row twice


FAILED_THEN_KILLED = """
    import datetime as dt, os, signal, sys, time
    from pathlib import Path
    from mlcycle.serving.predlog import Batch, PredictionLog
    folder, flag, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

    class Flaky(PredictionLog):  # no part can be written while the flag file exists
        def table(self, held):
            if flag.exists():
                raise OSError("no space left on device (test)")
            return super().table(held)

    def until(cond):
        deadline = time.monotonic() + 60
        while not cond() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cond()

    log = Flaky(folder, max_rows=3, roll_seconds=3600).start()
    sub = lambda i: log.submit(Batch({"x": [float(i)]}, {"prediction": [1], "score": [0.5]}, "1", f"r{i}",
                                     dt.datetime.now(dt.UTC)))
    for i in range(3):
        sub(i)  # a part of 3 rows: its write fails
    until(lambda: log.error is not None)
    for i in range(3, 7):
        sub(i)  # new rows meanwhile: a second part rolled (waiting for the retry), a third being filled
    if mode == "retried":
        flag.unlink()
        until(lambda: log.rows_written == 6)  # both held parts written at the retry, oldest first
        sub(7)
    print("answered", log.parts_written, log.pending, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("mode, answered, in_parts", [("parked", 7, 0), ("retried", 8, 6)])
def test_parts_held_after_a_failed_write_are_recovered_once_after_a_kill(tmp_path, mode, answered, in_parts):
    folder, flag = tmp_path / "log", tmp_path / "full"
    flag.touch()
    proc = child(FAILED_THEN_KILLED, str(folder), str(flag), mode)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert proc.stdout.split() == ["answered", str(in_parts // 3), str(answered - in_parts)], proc.stderr
    assert len(read(folder)) == in_parts
    assert len(list((folder / "_journal").glob("*.journal"))) == (3 if mode == "parked" else 1)  # one per part held
    log = PredictionLog(folder).start()  # the next start
    log.close()
    df = read(folder)
    assert log.rows_recovered == answered - in_parts
    assert sorted(df["request_id"]) == sorted(f"r{i}" for i in range(answered))  # each answered row once
    assert not list((folder / "_journal").glob("*.journal"))


def test_a_part_holds_exactly_its_journal_s_rows_across_rolls_under_concurrent_requests(tmp_path):
    """Requests append to the journal and to the part being filled from many threads while parts
    roll (by rows on a request's thread, by time on the writer's): when a part is written, its
    journal holds exactly its rows."""
    import threading

    from mlcycle.serving.predlog import read_journal

    checked: list[tuple[list, list]] = []

    class Checked(PredictionLog):
        def _write(self, held, folder, spill=False):
            if not spill:
                journal = [rid for _, _, cols in read_journal(self.journal_path(held.name)) for rid in cols["request_id"]]
                checked.append((sorted(held.cols["request_id"]), sorted(journal)))
            return super()._write(held, folder, spill)

    log = Checked(tmp_path, max_rows=7, roll_seconds=0.005).start()

    def client(c: int) -> None:
        for i in range(150):
            log.submit(Batch({"x": [float(i), 2.0]}, {"prediction": [1, 0], "score": [0.5, 0.25]}, "1", f"c{c}-{i}",
                             dt.datetime.now(dt.UTC)))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.close()
    assert len(checked) > 10 and sum(len(rows) for rows, _ in checked) == 1200
    assert all(rows == journal for rows, journal in checked)
    df = read(tmp_path)
    assert len(df) == 1200 and df.groupby("request_id").size().eq(2).all() and df["request_id"].nunique() == 600
    assert not list((tmp_path / "_journal").glob("*.journal"))


def test_a_torn_journal_line_is_skipped_with_a_warning(tmp_path):
    folder = tmp_path / "log"
    assert child(KILLED_WRITER, str(folder)).returncode == -signal.SIGKILL
    journal = next((folder / "_journal").glob("*.journal"))
    journal.write_bytes(journal.read_bytes()[:-20])  # a machine crash in the middle of the last record
    with pytest.warns(TornLine, match=rf"{journal.name}: line 50 skipped \(a torn last line"):
        assert PredictionLog(folder).recover() == 49


def test_a_live_writer_s_journal_is_left_alone(tmp_path):
    log = PredictionLog(tmp_path, roll_seconds=3600).start()
    log.submit(Batch({"distance": [1.0]}, {"prediction": [1], "score": [0.5]}, "3", "r", dt.datetime.now(dt.UTC)))
    assert PredictionLog(tmp_path).recover() == 0  # another worker starting: this process still holds it
    log.close()
    assert len(read(tmp_path)) == 1 and not list((tmp_path / "_journal").glob("*.journal"))


def test_the_queue_is_bounded_in_bytes(tmp_path):
    log = PredictionLog(tmp_path, roll_seconds=3600, max_queue_bytes=1_000_000)
    log._thread = type("Stuck", (), {"is_alive": lambda self: True})()  # a writer that takes nothing
    big = Batch({"text": ["x" * 600_000]}, {"prediction": [1], "score": [0.5]}, "3", "a", dt.datetime.now(dt.UTC))
    log.submit(big)
    log.submit(big)  # 1.2 MB: the part is rolled, and waits for the writer
    with pytest.raises(LogFull, match="1.2 MB of rows wait"):
        log.submit(big)  # at once, not after a wait: a waiting request holds its bytes too
    assert log.pending == 2


def test_a_part_rolls_at_the_byte_bound(tmp_path):
    log = PredictionLog(tmp_path, roll_seconds=3600, max_queue_bytes=100_000).start()
    for i in range(5):
        log.submit(Batch({"text": ["x" * 30_000]}, {"prediction": [1], "score": [0.5]}, "3", f"r{i}",
                         dt.datetime.now(dt.UTC)))
    deadline = dt.datetime.now() + dt.timedelta(seconds=30)
    while not list(tmp_path.glob("part-*.parquet")) and dt.datetime.now() < deadline:
        pass
    assert list(tmp_path.glob("part-*.parquet"))  # written before roll_seconds and max_rows
    log.close()


def test_log_parts_journals_and_labels_are_private(tmp_path):
    folder = tmp_path / "log"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)  # written by an older version
    log = PredictionLog(folder, roll_seconds=3600).start()
    log.submit(Batch({"distance": [1.0]}, {"prediction": [1], "score": [0.5]}, "3", "r", dt.datetime.now(dt.UTC)))
    journal = next((folder / "_journal").glob("*.journal"))
    modes = {"journal": journal.stat().st_mode, "journal folder": (folder / "_journal").stat().st_mode}
    log.close()
    store = feedback.FeedbackStore(folder)
    store.add([{"request_id": "r", "label": 1}], META)
    store.add_file(pd.DataFrame({"request_id": ["r"], "row": [0], "label": [1]}).iloc[:0], META, "file")
    labels = folder / "_labels"
    modes.update({"log folder": folder.stat().st_mode, "part": next(folder.glob("part-*")).stat().st_mode,
                  "label folder": labels.stat().st_mode, "lock": (labels / ".lock").stat().st_mode})
    modes.update({p.name: p.stat().st_mode for p in labels.glob("labels-*.jsonl")})
    assert len(modes) == 8
    for what, mode in modes.items():
        assert stat.S_IMODE(mode) == (0o700 if stat.S_ISDIR(mode) else 0o600), (what, oct(mode))


def torn(path, good: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in good) + '{"request_id": "r9", "ro')


def test_a_torn_label_line_is_skipped_and_the_next_feedback_is_stored(tmp_path):
    log = PredictionLog(tmp_path).start()
    for i in range(3):
        log.submit(Batch({"distance": [1.0]}, {"prediction": [1], "score": [0.5]}, "3", f"r{i}", dt.datetime.now(dt.UTC)))
    log.close()
    path = tmp_path / "_labels" / f"labels-{os.getpid()}.jsonl"  # this process's own file: appended to next
    torn(path, [{"request_id": "r0", "row": 0, "label": 1, "ts": "t", "source": "api"}])
    with pytest.warns(TornLine, match=rf"{path.name}: line 2 skipped \(a torn last line"):
        assert list(feedback.read(tmp_path)["request_id"]) == ["r0"]
    store = feedback.FeedbackStore(tmp_path)
    with pytest.warns(TornLine, match="a torn last line"):
        assert store.add([{"request_id": "r1", "label": 0}], META) == 1
    assert store.add([{"request_id": "r2", "label": 1}], META) == 1
    with pytest.raises(ClientError) as err:
        store.add([{"request_id": "r0", "label": 0}], META)
    assert err.value.status == 409
    assert list(feedback.read(tmp_path)["request_id"]) == ["r0", "r1", "r2"]


FULL_DISK = """
    import os, resource, signal, sys
    from mlcycle.core.errors import ClientError
    from mlcycle.serving.feedback import FeedbackStore
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    store = FeedbackStore(sys.argv[1])
    store.known.add("r", 100)
    store.add([{"request_id": "r", "row": 0, "label": 1}], {"task": "classification", "classes": [0, 1]})
    size = os.path.getsize(store.folder / f"labels-{os.getpid()}.jsonl")
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 60, size + 60))  # the disk fills mid-write
    try:
        store.add([{"request_id": "r", "row": i, "label": 1} for i in range(1, 20)],
                  {"task": "classification", "classes": [0, 1]})
        print("stored")
    except ClientError as exc:
        print(exc.status, exc.error)
    print(os.path.getsize(store.folder / f"labels-{os.getpid()}.jsonl") == size)
"""


def test_a_short_write_leaves_no_partial_label_line(tmp_path):
    proc = child(FULL_DISK, str(tmp_path))
    assert proc.stdout.split("\n")[:2] == ["503 labels not stored", "True"], proc.stdout + proc.stderr
    assert list(feedback.read(tmp_path)["row"]) == [0]  # no warning: nothing torn


def test_a_torn_audit_line_is_skipped_and_the_next_entry_appended(tmp_path):
    path = tmp_path / "audit.jsonl"
    torn(path, [{"model": "m", "action": "promote", "to_version": "1"}])
    with pytest.warns(TornLine, match=r"audit.jsonl: line 2 skipped \(a torn last line"):
        assert [e["to_version"] for e in audit.read(path)] == ["1"]
    with pytest.warns(TornLine, match="a torn last line"):
        audit.append(path, None, "m", "rollback", "1", "2", "test")
    assert [e["action"] for e in audit.read(path, "m")] == ["promote", "rollback"]


def test_serve_log_queue_mb_reaches_the_server_settings(tmp_path):
    from mlcycle.core import config
    from mlcycle.serving import settings

    params = config.load(Path(mlcycle.__file__).resolve().parents[2] / "params.yaml")
    assert params.serve.log_queue_mb == 64.0
    params = params.model_copy(update={"serve": params.serve.model_copy(update={"log_queue_mb": 0.5})})
    s = settings.settings(tmp_path, params)
    assert s.log_queue_bytes == 500_000 and settings.Settings.from_json(s.to_json()) == s
