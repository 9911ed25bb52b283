"""JSON-lines files that grow by appends: each append is whole or not at all, and readers survive
a line that a write cut short (a full disk, a crash) by skipping it with a warning.

`append` writes records with one `write_whole` (looping over short writes; on an error the file is
cut back to its size before, so no partial line is left) after cutting a torn last line left by an
earlier writer (a process killed mid-write), so the next record never glues onto it. `parse` and
`read` return the records of every line that parses and warn (`TornLine`, and the log) naming the
file and line of each one that does not.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

from mlcycle.core.errors import TornLine

log = logging.getLogger("mlcycle")


def write_whole(fd: int, data: bytes) -> None:
    """Append all of `data` to the file open as `fd` (O_APPEND), looping over short writes; on an
    error the file is cut back to its size before and the OSError raised."""
    start = os.lseek(fd, 0, os.SEEK_END)
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
    except OSError:
        try:
            os.ftruncate(fd, start)
        except OSError:
            pass
        raise


def cut_torn_tail(fd: int, path: Path) -> int:
    """Cut a last line without its newline (an earlier write cut short) from the file open as `fd`
    (read and write), with a warning naming the file; the bytes cut."""
    size = os.fstat(fd).st_size
    if not size or os.pread(fd, 1, size - 1) == b"\n":
        return 0
    keep, pos = 0, size
    while pos > 0:  # the last newline, read backwards in blocks
        step = min(65536, pos)
        block = os.pread(fd, step, pos - step)
        i = block.rfind(b"\n")
        if i >= 0:
            keep = pos - step + i + 1
            break
        pos -= step
    os.ftruncate(fd, keep)
    msg = f"{path}: a torn last line ({size - keep} bytes without a newline, a write cut short) was cut"
    log.warning(msg)
    warnings.warn(msg, TornLine, stacklevel=3)
    return size - keep


def append(path: Path, records: list[dict], mode: int = 0o600, sync: bool = True, sort_keys: bool = False) -> None:
    """Append `records` as JSON lines to `path` (created with `mode`), whole or not at all; synced
    to disk when `sync`. The caller holds whatever lock keeps other writers out meanwhile."""
    data = "".join(json.dumps(r, sort_keys=sort_keys) + "\n" for r in records).encode()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, mode)
    try:
        cut_torn_tail(fd, Path(path))
        start = os.lseek(fd, 0, os.SEEK_END)
        write_whole(fd, data)
        if sync:
            try:
                os.fsync(fd)
            except OSError:  # not known to be on disk: taken back, so the caller's error stands alone
                os.ftruncate(fd, start)
                raise
    finally:
        os.close(fd)


def skipped(path: Path, line: int, last: bool, exc: Exception) -> None:
    """Warn (and log) that line `line` of `path` was skipped: a torn last line or a damaged one."""
    what = "a torn last line" if last else "a damaged line"
    msg = f"{path}: line {line} skipped ({what}: {type(exc).__name__}: {str(exc)[:120]})"
    log.warning(msg)
    warnings.warn(msg, TornLine, stacklevel=3)


def parse(data: bytes, path: Path, first_line: int = 1) -> list[dict]:
    """The records of the JSON lines in `data` (read from `path`, starting at line `first_line`);
    a line that does not parse is skipped with a warning."""
    out = []
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError as exc:
            skipped(path, first_line + i, i == len(lines) - 1, exc)
    return out


def read(path: Path) -> list[dict]:
    """The records of a JSON-lines file (none when it does not exist), torn lines skipped with a warning."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return parse(data, path)
