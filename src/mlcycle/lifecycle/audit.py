"""The audit log: every gate decision, promotion and rollback, one JSON line each.

The log is `Paths.audit_log` (`mlruns/audit.jsonl` in the main workspace), append-only; each entry
is copied to a tag of the registered model too, so it shows in MLflow. Moves of the champion hold
an exclusive file lock (`fcntl.flock` on `audit.jsonl.lock`, next to the log) while they read the
champion, move the alias and append, so the chain holds: each move's `from_version` is the
previous move's `to_version` (`verify_chain` checks it; `mlcycle audit --verify`).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import getpass
import json
from contextlib import contextmanager
from pathlib import Path

MOVES = ("promote", "gate-promote", "rollback")  # audit actions that move the champion alias


@contextmanager
def locked(audit_file: Path):
    """Hold the registry's exclusive lock (a file lock next to the audit log) for the block:
    other processes' promotions, rollbacks and gate decisions wait until it ends."""
    audit_file = Path(audit_file)
    audit_file.parent.mkdir(parents=True, exist_ok=True)
    with open(audit_file.parent / f"{audit_file.name}.lock", "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def under_lock(fn):
    """Run `fn(client, audit_file, ...)` holding `locked(audit_file)`."""
    @functools.wraps(fn)
    def wrapper(client, audit_file, *args, **kwargs):
        with locked(audit_file):
            return fn(client, audit_file, *args, **kwargs)
    return wrapper


def verify_chain(entries: list[dict]) -> list[str]:
    """Breaks in the audit chain of one model: a move whose `from_version` is not the previous
    move's `to_version`. An empty list when the chain holds."""
    breaks, last = [], None
    for i, e in enumerate(entries):
        if e.get("action") not in MOVES:
            continue
        if last is not None and e.get("from_version") != last.get("to_version"):
            breaks.append(f"entry {i + 1} ({e.get('when')}, {e['action']} v{e.get('from_version')} -> "
                          f"v{e.get('to_version')}): the previous move left v{last.get('to_version')} as champion")
        last = e
    return breaks


def append(audit_file: Path, client, name: str, action: str, version_from, version_to, reason: str,
          details: dict | None = None) -> dict:
    """Append one entry to the audit log and mirror it as a registered-model tag."""
    entry = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model": name, "action": action,
        "from_version": None if version_from is None else str(version_from),
        "to_version": None if version_to is None else str(version_to),
        "reason": reason, "who": getpass.getuser(),
    }
    if details:
        entry["details"] = details
    audit_file.parent.mkdir(parents=True, exist_ok=True)
    with audit_file.open("a", encoding="utf-8") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")
    try:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        client.set_registered_model_tag(name, f"audit.{stamp}", json.dumps(entry)[:5000])
    except Exception:
        pass
    return entry


def read(audit_file: Path, name: str | None = None) -> list[dict]:
    """The audit log's entries, oldest first (of one model when `name` is given)."""
    if not audit_file.exists():
        return []
    rows = [json.loads(line) for line in audit_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if name is None or r["model"] == name]
