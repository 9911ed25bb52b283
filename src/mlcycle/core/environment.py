"""The locked environment: the pins of `requirements.lock` (every package at an exact version with
its hashes, written by `make lock`), the lock's digest, and whether the installed packages are the
pinned ones. Tracking records the answer on every run; a stage report says when they differ."""

from __future__ import annotations

import functools
import hashlib
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

LOCK_FILE = "requirements.lock"  # at the workspace's root
DIFFERS_CHARS = 300  # the summary of what differs is cut to this many characters

_SEPARATORS = re.compile(r"[-_.]+")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*==\s*([^\s;]+)\s*(?:;\s*(.+?))?\s*$")
_OPTION = re.compile(r"\s+(?=--)")
_HEADER = re.compile(r"^(Name|Version):[ \t]*(\S+)", re.M)


def canonical(name: str) -> str:
    """A distribution's name as PEP 503 compares them: `ruamel.yaml.clib` -> `ruamel-yaml-clib`."""
    return _SEPARATORS.sub("-", name).lower()


@dataclass(frozen=True)
class Pin:
    """One locked package: canonical name, exact version, environment marker (or None), hashes."""

    name: str
    version: str
    marker: str | None
    hashes: tuple[str, ...]


@dataclass(frozen=True)
class Status:
    """The installed packages against the lock. `matches` is None when there is no lock to compare
    with (`digest` "none") or it cannot be read; `differs` lists what is not as pinned."""

    digest: str
    matches: bool | None
    differs: tuple[str, ...] = ()

    def summary(self, limit: int = DIFFERS_CHARS) -> str:
        """`differs` as one line of at most `limit` characters, with how many were left out."""
        text = ", ".join(self.differs)
        if len(text) <= limit:
            return text
        shown: list[str] = []
        for i, item in enumerate(self.differs):
            more = f", ... ({len(self.differs) - i} more)"
            if len(", ".join([*shown, item])) + len(more) > limit:
                return ", ".join(shown) + more if shown else more[2:]
            shown.append(item)
        return text


def logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """(first line number, text) of each requirement line, comments removed and `\\` continuations joined."""
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined = (pending + line).strip()
        pending = ""
        if joined:
            yield start, joined
    if pending.strip():
        yield start, pending.strip()


def parse(text: str) -> dict[str, Pin]:
    """{canonical name: Pin} of a requirements file as `uv pip compile --generate-hashes` writes it:
    `name==version [; marker]` followed by `--hash=algo:hex` options. Option lines (`--index-url`...)
    are skipped; a requirement that is not pinned with `==` raises ValueError naming its line."""
    pins: dict[str, Pin] = {}
    for number, line in logical_lines(text):
        if line.startswith("-"):
            continue
        requirement, *options = _OPTION.split(line)
        m = _PIN.match(requirement)
        if not m:
            raise ValueError(f"{LOCK_FILE} line {number}: {requirement!r} is not pinned as name==version")
        hashes: list[str] = []
        for opt in options:
            key, _, value = opt.partition("=") if "=" in opt.split()[0] else opt.partition(" ")
            if key.strip() == "--hash":
                hashes.append(value.strip())
        name = canonical(m.group(1))
        pins[name] = Pin(name, m.group(3), m.group(4), tuple(hashes))
    return pins


def installed(path: list[str] | None = None) -> dict[str, str]:
    """{canonical name: version} of the distributions found on `path` (default sys.path), the first
    one found winning as in importlib.metadata. Reads only each metadata file's header (fast)."""
    from importlib import metadata

    found: dict[str, str] = {}
    for dist in metadata.distributions(path=path if path is not None else sys.path):
        text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
        head = dict(m.groups() for m in _HEADER.finditer(text.split("\n\n", 1)[0]))
        if "Name" in head and "Version" in head:
            found.setdefault(canonical(head["Name"]), head["Version"])
    return found


def same_version(a: str, b: str) -> bool:
    if a == b:
        return True
    from packaging.version import InvalidVersion, Version

    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return False


def compare(pins: dict[str, Pin], have: dict[str, str], environment: dict[str, str] | None = None) -> list[str]:
    """What is not as locked, in the lock's order: `pandas 3.0.1 (lock 3.0.2)`, `foo (not installed)`.
    A pin whose environment marker does not hold here (or in `environment`) is skipped; packages the
    lock does not name (pip, the project itself) are not compared."""
    differs = []
    for pin in pins.values():
        if pin.marker:
            from packaging.markers import Marker

            if not Marker(pin.marker).evaluate(environment):
                continue
        got = have.get(pin.name)
        if got is None:
            differs.append(f"{pin.name} (not installed)")
        elif not same_version(got, pin.version):
            differs.append(f"{pin.name} {got} (lock {pin.version})")
    return differs


def check_lock(requirements: Iterable[str], pins: dict[str, Pin]) -> list[str]:
    """What a lock does not satisfy: each requirement (`pandas>=3.0`, `dask[dataframe]>=2026.1`;
    extras ignored) must be pinned at a version within its bounds, and every pin must carry a hash."""
    from packaging.requirements import Requirement

    problems = []
    for line in requirements:
        req = Requirement(line)
        pin = pins.get(canonical(req.name))
        if pin is None:
            problems.append(f"{req.name}: not in {LOCK_FILE}")
        elif not req.specifier.contains(pin.version, prereleases=True):
            problems.append(f"{req.name}: {LOCK_FILE} pins {pin.version}, outside {req.specifier}")
    problems += [f"{p.name}=={p.version}: no --hash" for p in pins.values() if not p.hashes]
    return problems


def status(root: Path) -> Status:
    """This process's packages against `root`/requirements.lock. Cached while neither the lock nor
    the folders on sys.path change (installing or removing a package changes its folder)."""
    lock = Path(root).resolve() / LOCK_FILE
    try:
        st = lock.stat()
        lock_key = (st.st_mtime_ns, st.st_size)
    except OSError:
        lock_key = None
    folders = []
    for entry in sys.path:
        try:
            folders.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            pass
    return cached_status(str(lock), lock_key, tuple(folders))


@functools.lru_cache(maxsize=8)
def cached_status(lock: str, lock_key, folders: tuple) -> Status:
    """`status` once per lock and state of sys.path (the arguments are the cache key)."""
    try:
        text = Path(lock).read_bytes() if lock_key is not None else None
    except OSError:
        text = None
    if text is None:
        return Status("none", None)
    sha = hashlib.sha256(text).hexdigest()
    try:  # a lock that cannot be read, or metadata that cannot: nothing to say either way
        differs = compare(parse(text.decode()), installed([f for f, _ in folders]))
    except (ValueError, UnicodeDecodeError, OSError):
        return Status(sha, None)
    return Status(sha, not differs, tuple(differs))
