"""Progress of long work (search trials, the replay's periods, batch scoring's partitions): a bar
(tqdm) in a terminal, plain lines where a bar would be noise (not a terminal, `CI` set, inside a
notebook's kernel). Inside a kernel the lines go to the process's own stderr, the runner's terminal
or CI log, never into the notebook's outputs, so reports stay free of them.

`MLCYCLE_PROGRESS` chooses by hand: `bar`, `lines` or `off`."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import IO, Literal

Mode = Literal["bar", "lines", "off"]


def _in_kernel() -> bool:
    return "ipykernel" in sys.modules and type(sys.stderr).__name__ == "OutStream"


def stream() -> IO[str] | None:
    """Where progress goes: stderr, or the process's real stderr inside a kernel."""
    return sys.__stderr__ if _in_kernel() else sys.stderr


def mode(out: IO[str] | None = None) -> Mode:
    """`bar` on a terminal; `lines` when not a terminal, when `CI` is set or inside a kernel."""
    chosen = os.environ.get("MLCYCLE_PROGRESS", "").strip().lower()
    if chosen in ("bar", "lines", "off"):
        return chosen  # type: ignore[return-value]
    out = out if out is not None else stream()
    if out is None:
        return "off"
    if os.environ.get("CI", "").lower() not in ("", "0", "false") or _in_kernel():
        return "lines"
    try:
        return "bar" if out.isatty() else "lines"
    except (AttributeError, ValueError):
        return "lines"


class Progress:
    """Counts finished items of `total`. Lines mode prints `desc: n/total unit (p%, s)` at the first
    item, at every tenth of the total and at the end, so a log gets at most a dozen lines whatever
    the total. Safe to update from other threads (Dask callbacks)."""

    def __init__(self, total: int, desc: str, unit: str = "items", out: IO[str] | None = None,
                 how: Mode | None = None):
        self.total, self.desc, self.unit = max(int(total), 0), desc, unit
        self.out = out if out is not None else stream()
        self.how: Mode = how or mode(self.out)
        self.n = 0
        self._tenth = -1
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._bar = None
        if self.how == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=desc, unit=f" {unit}", file=self.out, leave=True,
                             dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        with self._lock:
            self.n += n
            if self._bar is not None:
                self._bar.update(n)
            elif self.how == "lines":
                tenth = 10 * self.n // self.total if self.total else 10
                if self.n == n or tenth > self._tenth or self.n >= self.total:
                    self._tenth = tenth
                    self._line()

    def _line(self) -> None:
        share = f"{100 * self.n / self.total:.0f}%, " if self.total else ""
        print(f"{self.desc}: {self.n}/{self.total} {self.unit} ({share}{time.monotonic() - self._start:.0f} s)",
              file=self.out, flush=True)

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
