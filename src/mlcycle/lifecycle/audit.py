"""The audit log: every gate decision, promotion and rollback, one JSON line each.

On the local store the log is `Paths.audit_log` (`mlruns/audit.jsonl` in the main workspace),
append-only, each entry one whole line (`core/jsonl.py`: a reader skips a torn line with a warning
naming the file and line, the next writer cuts it); each entry is copied to a tag of the registered model too, so it shows in MLflow.
On a shared registry (a tracking server or a database: every URI but `sqlite:` and `file:`) the
registered model's `audit.<time>.<random>` tags are the log: every colleague reads the same
history, and each entry has its own key, so parallel writers never overwrite one another. A tag
that cannot be written there fails the operation (it is the only record).

Moves of the champion hold an exclusive lock while they read the champion, move the alias and
append, so the chain holds: each move's `from_version` is the previous move's `to_version`
(`verify_chain` checks it; `mlcycle model audit --verify`). Locally the lock is `fcntl.flock` on
`audit.jsonl.lock`, next to the log. On a shared registry it is also a lock in the server, which
covers other machines: the registered model `mlcycle.audit-lock`, whose creation is atomic in
the server's database (a second creator gets RESOURCE_ALREADY_EXISTS and waits). A holder that
died leaves it behind; it expires after `LEASE_SECONDS` and is then taken over.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import functools
import getpass
import json
import secrets
import socket
import time
from contextlib import contextmanager
from pathlib import Path

from mlcycle.core import jsonl
from mlcycle.core.errors import RegistryError

MOVES = ("promote", "gate-promote", "rollback")  # audit actions that move the champion alias
TAG_PREFIX = "audit."
LOCK_MODEL = "mlcycle.audit-lock"  # the server-side lock of a shared registry
LEASE_SECONDS = 120.0  # a server-side lock older than this is taken over (its holder died)
WAIT_SECONDS = 300.0


def shared(client) -> bool:
    """Whether `client`'s registry is shared (a server or a database), not a local store."""
    if client is None:
        return False
    uri = getattr(client, "_registry_uri", None) or ""
    if not uri:
        import mlflow

        uri = mlflow.get_registry_uri() or ""
    return shared_uri(uri)


def shared_uri(uri: str) -> bool:
    """Every registry URI but a local store's (`sqlite:`, `file:`, a path) is a shared one."""
    return not uri.startswith(("sqlite:", "file:", "/")) and "://" in uri


@contextmanager
def server_lock(client, wait: float = WAIT_SECONDS):
    """An exclusive lock held in the tracking server (see the module docstring)."""
    holder = f"{socket.gethostname()}:{getpass.getuser()}:{secrets.token_hex(4)}"
    deadline = time.monotonic() + wait
    delay = 0.05
    while True:
        try:
            client.create_registered_model(LOCK_MODEL, tags={"holder": holder, "since": f"{time.time():.3f}"},
                                           description="held while a promotion, rollback or gate decision "
                                                       "moves the champion and appends to the audit log")
            break
        except Exception as exc:
            # held by another writer: ALREADY_EXISTS; or RESOURCE_DOES_NOT_EXIST when the server met
            # the lock, looked it up to say so, and found its holder had released it meanwhile
            if not any(k in str(exc) for k in ("ALREADY_EXISTS", "already exists", "RESOURCE_DOES_NOT_EXIST")):
                raise
        try:
            since = float((client.get_registered_model(LOCK_MODEL).tags or {}).get("since", "0"))
            if time.time() - since > LEASE_SECONDS:
                client.delete_registered_model(LOCK_MODEL)  # its holder died: take it over
                continue
        except Exception:  # released meanwhile
            continue
        if time.monotonic() > deadline:
            raise RegistryError(f"the registry lock '{LOCK_MODEL}' stayed held for {wait:.0f} s; if no promotion "
                                "runs, delete that registered model")
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
    try:
        yield
    finally:
        try:
            client.delete_registered_model(LOCK_MODEL)
        except Exception:
            pass


@contextmanager
def locked(audit_file: Path, client=None):
    """Hold the registry's exclusive lock for the block (a file lock next to the audit log and, on
    a shared registry, the server's lock): other promotions, rollbacks and gate decisions wait."""
    audit_file = Path(audit_file)
    audit_file.parent.mkdir(parents=True, exist_ok=True)
    with open(audit_file.parent / f"{audit_file.name}.lock", "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            if shared(client):
                with server_lock(client):
                    yield
            else:
                yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def under_lock(fn):
    """Run `fn(client, audit_file, ...)` holding `locked(audit_file, client)`."""
    @functools.wraps(fn)
    def wrapper(client, audit_file, *args, **kwargs):
        with locked(audit_file, client):
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
    if shared(client):  # the tag is the record: it must be written
        client.set_registered_model_tag(name, tag_key(), tag_value(entry))
        return entry
    audit_file.parent.mkdir(parents=True, exist_ok=True)
    # the whole line or nothing (a torn last line left by a killed writer is cut first), synced
    jsonl.append(audit_file, [entry], mode=0o666, sort_keys=True)
    try:
        client.set_registered_model_tag(name, tag_key(), tag_value(entry))
    except Exception:
        pass
    return entry


def tag_key(when: dt.datetime | None = None) -> str:
    """`audit.<UTC time to the microsecond>.<random>`: sorts by time, unique across writers."""
    stamp = (when or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%S%f")
    return f"{TAG_PREFIX}{stamp}.{secrets.token_hex(3)}"


def tag_value(entry: dict, limit: int = 5000) -> str:
    """The entry as JSON within a tag's size limit (long details are dropped, and that is said)."""
    text = json.dumps(entry, sort_keys=True)
    if len(text) > limit and "details" in entry:
        text = json.dumps({**{k: v for k, v in entry.items() if k != "details"}, "details_truncated": True},
                          sort_keys=True)
    if len(text) > limit:
        text = json.dumps({**{k: v for k, v in entry.items() if k != "details"}, "reason": entry["reason"][:limit // 2],
                           "details_truncated": True}, sort_keys=True)
    return text


def from_tags(tags: dict[str, str]) -> list[dict]:
    """The entries kept as registered-model tags, oldest first (by their keys' time stamps)."""
    rows = []
    for k in sorted(t for t in tags if t.startswith(TAG_PREFIX)):
        try:
            rows.append(json.loads(tags[k]))
        except ValueError:  # a tag cut at 5,000 characters by an older version
            continue
    return rows


def read(audit_file: Path, name: str | None = None, client=None) -> list[dict]:
    """The audit log's entries, oldest first (of one model when `name` is given). On a shared
    registry (`client` given) they are read from the registered models' tags."""
    if shared(client):
        models = [name] if name else [m.name for m in client.search_registered_models() if m.name != LOCK_MODEL]
        rows = []
        for m in models:
            try:
                rows += from_tags(client.get_registered_model(m).tags or {})
            except Exception as exc:
                if "RESOURCE_DOES_NOT_EXIST" not in str(exc) and "not found" not in str(exc).lower():
                    raise
        return rows
    rows = jsonl.read(audit_file)  # a torn or damaged line is skipped with a warning naming it
    return [r for r in rows if isinstance(r, dict) and (name is None or r.get("model") == name)]
