"""Where a result came from: file digests and the workspace's git state, read one way everywhere."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path


def file_md5(path: Path) -> str | None:
    """MD5 of a file, the same digest DVC records for it; None when the file does not exist."""
    path = Path(path)
    if not path.exists():
        return None
    h = hashlib.md5()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def git_state(root: Path) -> dict:
    """{commit, dirty} of the workspace at `root` (tracked files only), or None for both with a note
    saying why (not a git repository, no commit yet)."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=20)

    head = git("rev-parse", "HEAD")
    if head.returncode != 0:
        return {"commit": None, "dirty": None, "note": "not a git repository or no commit yet"}
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
