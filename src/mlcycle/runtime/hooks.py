"""What the runner calls around a stage's execution: the hook protocol, and the child that runs
hooks in another process (forked by the runner, or by the warm tracking daemon, `trackd`).

A hook sees a `StageRun` (this module imports neither the runner nor the daemon, which both
use it): `prepare` (optional) reads what records nothing, `start` before the notebook runs,
`end` after it, with the outcome.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from mlcycle.core import config
from mlcycle.core.errors import RecordingError


@dataclass
class StageRun:
    stage: str
    root: Path
    params: config.Params
    notebook: Path
    executed: Path
    html: Path
    status: str = "RUNNING"  # RUNNING | FINISHED | FAILED
    tracking_run_id: str | None = None
    record: Path | None = None  # where the stage hands tracking what else to record (core/record.py)
    error: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)


class Hook(Protocol):
    def start(self, run) -> None: ...
    def end(self, run) -> None: ...


def start_hooks(hooks, run: StageRun) -> str | None:
    """Start every hook; return the first failure as text (raised by the runner after execution)."""
    for h in hooks:
        try:
            h.start(run)
        except Exception as exc:
            return f"{type(exc).__name__}: {str(exc)[:300]}"
    return None



def hooks_child(hooks, run: StageRun, conn) -> None:
    error = None
    for h in hooks:  # imports and reads that record nothing: done while the runner checks the stage
        prepare = getattr(h, "prepare", None)
        if prepare is not None and error is None:
            try:
                prepare(run)
            except Exception as exc:
                error = f"{type(exc).__name__}: {str(exc)[:300]}"
    try:
        if conn.recv() != "go":
            return
    except (EOFError, OSError):  # the runner ended before the stage started: nothing to record
        return
    error = error or start_hooks(hooks, run)
    conn.send((error, run.tracking_run_id))
    if error is not None:
        return
    try:
        run.status, run.error, run.seconds = conn.recv()
    except (EOFError, OSError):  # the runner ended without telling the outcome (a socket may be reset): never leave the run RUNNING
        run.status, run.error = "FAILED", "the stage's runner process ended before the stage finished"
    failed = end_hooks(hooks, run)
    try:
        conn.send(("ended", failed))
    except OSError:
        pass


def end_hooks(hooks, run: StageRun) -> str | None:
    """End every hook (one failing does not stop the others); return the failures as one text, or None.
    The runner fails the stage with it: a stage whose run could not be recorded is not done."""
    failures = []
    for h in hooks:
        try:
            h.end(run)
        except Exception as exc:
            traceback.print_exc()
            failures.append(str(exc) if isinstance(exc, RecordingError) else f"{type(exc).__name__}: {str(exc)[:300]}")
    return "; ".join(failures) or None
